"""
Second factors in the Django admin: who has which factor, and deleting one (a user who lost the
phone and the recovery codes). The sealed `data` is never shown or edited: it is ciphertext only
the gateway can open.
"""
from django.contrib import admin

from .models import SecondFactor


@admin.register(SecondFactor)
class SecondFactorAdmin(admin.ModelAdmin):
    list_display = ("user", "type", "status", "factor_id", "created_at")
    list_filter = ("type", "status")
    search_fields = ("factor_id",)
    exclude = ("data",)
    readonly_fields = ("user", "factor_id", "type", "status", "created_at")

    def has_add_permission(self, request):
        # Factors are enrolled through the gateway, which seals them.
        return False
