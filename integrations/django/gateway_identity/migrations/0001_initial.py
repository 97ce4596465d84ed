from django.conf import settings
from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="SecondFactor",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("factor_id", models.CharField(max_length=64)),
                ("type", models.CharField(choices=[("totp", "TOTP"), ("webauthn", "Passkey"), ("recovery_codes", "Recovery codes")], max_length=16)),
                ("status", models.CharField(choices=[("pending", "Pending"), ("active", "Active")], max_length=8)),
                ("created_at", models.DateTimeField()),
                ("data", models.TextField()),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="second_factors", to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["user", "created_at", "factor_id"]},
        ),
        migrations.AddConstraint(
            model_name="secondfactor",
            constraint=models.UniqueConstraint(fields=("user", "factor_id"), name="gateway_identity_one_factor_id_per_user"),
        ),
    ]
