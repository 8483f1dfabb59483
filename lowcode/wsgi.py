"""WSGI entry point (gunicorn lowcode.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lowcode.settings")

application = get_wsgi_application()
