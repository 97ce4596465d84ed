from django.apps import AppConfig
from django.core import checks


class GatewayIdentityConfig(AppConfig):
    name = "gateway_identity"
    verbose_name = "Auth gateway identity backend"

    def ready(self):
        from . import conf

        checks.register(conf.check_settings, checks.Tags.security)
