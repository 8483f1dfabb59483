# syntax=docker/dockerfile:1
# Production image: gunicorn as a non-root user; the same image runs the Celery worker and beat.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements/base.txt /tmp/requirements/base.txt
RUN /opt/venv/bin/pip install -r /tmp/requirements/base.txt

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=lowcode.settings \
    LOWCODE_HOME=/data \
    STATIC_ROOT=/app/staticfiles \
    MEDIA_ROOT=/data/media \
    LOG_FORMAT=json \
    LOWCODE_BIND=0.0.0.0:8000
# libmagic sniffs uploads' content types; pdftoppm (poppler) renders PDF previews.
RUN apt-get update && apt-get install -y --no-install-recommends libmagic1 poppler-utils \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app lowcode \
    && mkdir -p /data/media /app/staticfiles && chown -R lowcode /data /app/staticfiles
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=lowcode . .
USER lowcode
RUN python manage.py collectstatic --noinput --verbosity 0
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
# Workers and threads from the container's CPUs, restarts with jitter: lowcode/gunicorn_conf.py (README, "Web server").
CMD ["gunicorn", "-c", "python:lowcode.gunicorn_conf", "--access-logfile", "-"]
