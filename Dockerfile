# One image for the three Python services; SERVICE picks which one gunicorn runs.
# Two stages: the locked dependencies are installed (with their hashes, wheels only, so nothing is
# compiled) into a virtual environment in the first, and only that environment and the services'
# code reach the final image: no pip in the environment, no tests, no build tools
# (tests/containers/test_image.py checks the final image's files).
FROM python:3.11-slim AS dependencies

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# CA_BUNDLE: a CA bundle, mounted into the build, for pip behind a TLS-inspecting proxy (`make image`
# passes the host's when it has one); empty, pip uses its own.
ARG CA_BUNDLE=
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install ${CA_BUNDLE:+--cert "$CA_BUNDLE"} --only-binary :all: --require-hashes \
        -r /tmp/requirements.lock \
    && /opt/venv/bin/pip uninstall -q -y pip setuptools \
    && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

COPY --from=dependencies /opt/venv /opt/venv
WORKDIR /app
COPY gunicorn.conf.py .
COPY shared ./shared
COPY auth_service ./auth_service
COPY profile_service ./profile_service
COPY board_service ./board_service

# Non-root at run time; /keys belongs to that user so named volumes mounted there inherit it.
RUN useradd --system --uid 10001 --home-dir /app app \
    && mkdir -p /keys/private /keys/public \
    && chown -R app:app /keys
USER app

EXPOSE 8000
# PORT: where gunicorn listens (8000; tests/containers run the containers on the host's network, on free ports).
# PROMETHEUS_MULTIPROC_DIR: the workers' metric samples, on the /tmp the container must have writable
# (tmpfs); a command run in the container (`sessions revoke-all`) is counted there too.
ENV SERVICE=auth_service \
    PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics
CMD ["sh", "-c", "exec gunicorn -c gunicorn.conf.py --bind \"0.0.0.0:${PORT}\" \"${SERVICE}:create_app()\""]
