# deployflow's worker and `deployflow serve` as one image (docker-compose.temporal.yml builds
# it): `docker run deployflow:local worker --metrics-listen=0.0.0.0:9464`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# The packages first, so editing an example does not re-install the dependencies.
COPY pyproject.toml README.md ./
COPY workflows workflows
COPY activities activities
COPY workers workers
COPY starters starters
RUN pip install . && useradd --system --uid 10001 --home-dir /app deployflow
COPY examples examples

USER deployflow
# `deployflow worker` stops polling on SIGTERM and exits 0 once running activities finish
# (--grace-period); give the container runtime's stop timeout more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["deployflow"]
CMD ["worker"]
