from django.apps import AppConfig
from django.core import checks


class GatewayIdentityConfig(AppConfig):
    name = "gateway_identity"
    verbose_name = "Auth gateway identity backend"
    # The migration's primary key, whatever the project's DEFAULT_AUTO_FIELD.
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        from . import conf

        checks.register(conf.check_settings, checks.Tags.security)
