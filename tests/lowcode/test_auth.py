import os
import subprocess
import sys

from django.conf import settings
from django.core import mail
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

PASSWORD = "correct-horse-battery"


def test_login_and_logout(acme, make_user, acme_client):
    make_user(acme, "alice")
    page = acme_client.get("/accounts/login/")
    assert page.status_code == 200 and 'name="csrfmiddlewaretoken"' in page.content.decode()
    response = acme_client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response.url == "/"
    assert acme_client.post("/accounts/logout/").status_code == 302
    assert not acme_client.get("/").context["user"].is_authenticated


def test_csrf_is_enforced_on_login(acme, make_user):
    make_user(acme, "alice")
    client = Client(HTTP_HOST="acme.localhost", enforce_csrf_checks=True)
    assert client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 403


def test_repeated_failed_logins_lock_the_account(acme, make_user, acme_client):
    make_user(acme, "alice")
    for _attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert acme_client.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code == 200
    assert acme_client.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code == 429
    # Locked: even the right password is refused until the cool-off ends.
    locked = acme_client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()


def test_lockout_in_one_tenant_does_not_lock_another(acme, globex, make_user, acme_client, globex_client):
    make_user(acme, "alice")
    make_user(globex, "alice")
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        acme_client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    response = globex_client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302


def test_password_reset_sends_a_link_for_the_tenant(acme, make_user, acme_client):
    make_user(acme, "alice")
    response = acme_client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/reset/" in line).strip()
    assert link.startswith("http://acme.localhost/accounts/reset/")

    form = acme_client.get(link.removeprefix("http://acme.localhost"), follow=True)
    assert form.status_code == 200
    weak = acme_client.post(form.redirect_chain[-1][0], {"new_password1": "12345", "new_password2": "12345"})
    assert "This password is too short" in weak.content.decode()
    done = acme_client.post(form.redirect_chain[-1][0],
                            {"new_password1": "a-much-better-secret", "new_password2": "a-much-better-secret"})
    assert done.status_code == 302
    assert acme_client.post("/accounts/login/", {"username": "alice", "password": "a-much-better-secret"}
                            ).status_code == 302


def test_password_change_applies_the_validators(acme, make_user, acme_client):
    make_user(acme, "alice")
    acme_client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    refused = acme_client.post("/accounts/password_change/", {
        "old_password": PASSWORD, "new_password1": "password", "new_password2": "password"})
    assert "This password is too common" in refused.content.decode()
    changed = acme_client.post("/accounts/password_change/", {
        "old_password": PASSWORD, "new_password1": "tangerine-orbit-42", "new_password2": "tangerine-orbit-42"})
    assert changed.status_code == 302
    with tenant_context(acme):
        from django.contrib.auth import get_user_model

        assert get_user_model().objects.get(username="alice").check_password("tangerine-orbit-42")


def test_session_expires_after_inactivity(acme, make_user, acme_client):
    make_user(acme, "alice")
    response = acme_client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.cookies["sessionid"]["max-age"] == settings.SESSION_COOKIE_AGE
    assert response.cookies["sessionid"]["httponly"]
    session_key = response.cookies["sessionid"].value
    with connection.cursor() as cursor:
        cursor.execute("UPDATE acme.django_session SET expire_date = now() - interval '1 second' "
                       "WHERE session_key = %s", [session_key])
    assert not acme_client.get("/").context["user"].is_authenticated


def test_security_headers(acme, acme_client):
    response = acme_client.get("/accounts/login/")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_check_deploy_is_clean_with_production_variables():
    env = {**os.environ, "LOWCODE_SECURE": "1", "DEBUG": "0", "ALLOWED_HOSTS": "example.com,.example.com",
           "SECRET_KEY": "x7$kq!2v9w#p4z@m8r^t6y&u1i*o3e(l5a)s0d_f-g+h=j~kQ3",
           "DJANGO_SETTINGS_MODULE": "lowcode.settings"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE")  # Set for the browser tests only.
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=settings.BASE_DIR, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_secure_mode_refuses_the_development_secret_key():
    env = {**os.environ, "LOWCODE_SECURE": "1", "DJANGO_SETTINGS_MODULE": "lowcode.settings"}
    env.pop("SECRET_KEY", None)
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, env=env,
                            capture_output=True, text=True)
    assert result.returncode != 0 and "Set SECRET_KEY" in result.stderr


def test_pages_speak_simplified_chinese(acme, acme_client):
    page = acme_client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert page.headers["Content-Language"] == "zh-hans"
    assert "登录" in page.content.decode()
