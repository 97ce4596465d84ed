"""
Second-factor records (docs/identity-backend.md, docs/mfa.md): what the gateway stores per user.
`data` is sealed by the gateway (AES-256-GCM under its MFA_ENCRYPTION_KEY): kept as it comes,
never read here.
"""
from django.conf import settings
from django.db import models


class SecondFactor(models.Model):
    TYPES = [("totp", "TOTP"), ("webauthn", "Passkey"), ("recovery_codes", "Recovery codes")]
    STATUSES = [("pending", "Pending"), ("active", "Active")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="second_factors")
    factor_id = models.CharField(max_length=64)
    type = models.CharField(max_length=16, choices=TYPES)
    status = models.CharField(max_length=8, choices=STATUSES)
    created_at = models.DateTimeField()
    data = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "factor_id"], name="gateway_identity_one_factor_id_per_user")]
        ordering = ["user", "created_at", "factor_id"]

    def __str__(self):
        return f"{self.get_type_display()} {self.factor_id} of user {self.user_id}"

    def as_record(self):
        return {
            "id": self.factor_id,
            "type": self.type,
            "status": self.status,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "data": self.data,
        }
