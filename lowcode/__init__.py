"""Lowcode: a Django-based, admin-centric low-code suite."""

from lowcode.celery import app as celery_app

__all__ = ["celery_app"]
