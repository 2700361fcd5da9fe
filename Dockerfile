# One image for the three Python services; SERVICE picks which one gunicorn runs.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.lock .
RUN pip install --require-hashes -r requirements.lock

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
ENV SERVICE=auth_service
CMD ["sh", "-c", "exec gunicorn -c gunicorn.conf.py --bind 0.0.0.0:8000 \"${SERVICE}:create_app()\""]
