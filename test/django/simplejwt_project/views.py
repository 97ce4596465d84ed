from rest_framework.decorators import api_view
from rest_framework.response import Response


@api_view(['GET'])
def whoami(request):
    """The one protected view: who simplejwt (or the gateway assertion) says the caller is."""
    claims = request.auth
    return Response({
        'user_id': str(request.user.id),
        'username': claims.get('username') if claims is not None else None,
        'via': request.successful_authenticator.__class__.__name__,
    })
