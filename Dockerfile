# syntax=docker/dockerfile:1
# Steward's worker, API and CLI image: `docker run steward worker|api|...`.

ARG PYTHON_IMAGE=python:3.11-slim

# ------------------------------------------------------------------ build
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# A virtualenv at the same path in both stages, copied whole into the runtime.
RUN python -m venv /opt/steward
ENV PATH=/opt/steward/bin:$PATH

WORKDIR /src
COPY pyproject.toml ./
COPY domain ./domain
COPY workflows ./workflows
COPY clients ./clients
COPY activities ./activities
COPY store ./store
COPY workers ./workers
COPY starters ./starters
RUN pip install . \
    && python -c "import starters.cli, workers.worker, store.migrate"

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/steward/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STEWARD_DATA_DIR=/var/lib/steward

RUN groupadd --system --gid 10001 steward \
    && useradd --system --uid 10001 --gid steward --no-create-home \
        --home-dir /var/lib/steward --shell /usr/sbin/nologin steward \
    && install -d -o steward -g steward -m 0750 /var/lib/steward /var/lib/steward/reports

COPY --from=build /opt/steward /opt/steward

WORKDIR /var/lib/steward
USER 10001:10001

EXPOSE 8400
ENTRYPOINT ["steward"]
CMD ["--help"]
