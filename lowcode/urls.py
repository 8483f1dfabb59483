"""URLs of a tenant's site without any tenant's state (ROOT_URLCONF: reverse() outside a request).

A tenant's requests get its own URLconf from lowcode.site, with the per-tenant pieces of every
app (its entities' admin and data API).
"""

from django.contrib import admin

from lowcode import site, views

urlpatterns = site.urlpatterns(admin.site, per_tenant=False)
handler403, handler404, handler500 = views.ERROR_HANDLERS
