"""The end-user site's frame for any template extending pages/base.html: the viewer's menu and
the tenant's theme, read once per page."""

from django import template

from pages import services

register = template.Library()


@register.simple_tag(takes_context=True)
def site_menu(context):
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return []
    return services.menu(request)


@register.simple_tag(takes_context=True)
def site_topbar(context):
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return []
    return services.topbar_links(request)


@register.simple_tag
def site_theme():
    current = services.theme()
    return {"brand_colour": current.brand_colour, "mode": current.mode, "logo_url": services.logo_url(current)}


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None
