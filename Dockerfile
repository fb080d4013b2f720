# The CDS service image: `cds-service serve` under gunicorn, as a non-root user.
# Build: docker build -t cds-service .   (or: buildah bud -t cds-service .)
# Configuration only through CDS_* variables and mounted files (see docs/deployment.md).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: pip and the build backend live here only ------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python3 -m venv /opt/cds
COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
COPY fhir_mappings ./fhir_mappings
# Every dependency ships a binary wheel for this platform: no compiler is needed, and none
# reaches the final stage. pip itself is removed from the runtime environment afterwards.
RUN /opt/cds/bin/pip install --no-cache-dir . \
    && /opt/cds/bin/python -m compileall -q /opt/cds/lib \
    && /opt/cds/bin/pip uninstall --yes pip

# --- runtime: the interpreter, the installed service, nothing else -----------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="cds-service" \
      org.opencontainers.image.description="CDS Hooks 2.0 service for the inflammatory myopathy guideline" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/cds/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CDS_DATA_DIR=/var/lib/cds
RUN groupadd --system --gid 10001 cds \
    && useradd --system --uid 10001 --gid cds --home-dir /var/lib/cds --shell /usr/sbin/nologin cds \
    && mkdir -p /var/lib/cds \
    && chown cds:cds /var/lib/cds
COPY --from=build /opt/cds /opt/cds
USER 10001:10001
WORKDIR /var/lib/cds
EXPOSE 8080
# Liveness only: readiness (/readyz) is the orchestrator's probe. No curl in a slim image.
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["cds-service"]
# Another command runs the same image: `db upgrade` (the migration job), `report`, ...
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2", "--threads", "4"]
