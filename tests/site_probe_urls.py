"""A test app's static URLs (tests/lowcode/test_site.py)."""

from django.http import HttpResponse
from django.urls import path

urlpatterns = [path("static/", lambda request: HttpResponse("static"), name="probe-static")]
