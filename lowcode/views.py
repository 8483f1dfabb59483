from django.views.generic import TemplateView


class HomeView(TemplateView):
    """A tenant's start page: who is signed in, and where to go."""

    template_name = "home.html"
