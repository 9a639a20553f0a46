# The Pilotlight tools image: what the scheduled ECS tasks run (components/jobs.py).
# Build with `make image` (image/build.sh): a local Debian base, podman, the host CA lent to pip.
FROM debian:bookworm-slim

# The PostgreSQL client must match the databases' major (pilotlight:standby.parameterGroupFamily).
ARG PG_MAJOR=15

# Debian's own packages: python3 for the venv, the PostgreSQL client of that major, the CA store
# (TLS to AWS and verify-full to RDS).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates "postgresql-client-${PG_MAJOR}" \
 && rm -rf /var/lib/apt/lists/*

# The package in a venv, its dependencies pinned by the project's lock file. The host's CA is
# lent to pip for this step only (HTTPS here is re-signed by a proxy); nothing of it stays.
COPY requirements.lock image/requirements.txt /src/
RUN --mount=type=secret,id=hostca python3 -m venv /opt/pilotlight \
 && PIP_CERT=/run/secrets/hostca /opt/pilotlight/bin/pip install --no-cache-dir --disable-pip-version-check -q \
      -c /src/requirements.lock -r /src/requirements.txt
COPY pyproject.toml /src/
COPY scripts /src/scripts
COPY stacks /src/stacks
COPY components /src/components
RUN --mount=type=secret,id=hostca PIP_CERT=/run/secrets/hostca /opt/pilotlight/bin/pip install --no-cache-dir \
      --disable-pip-version-check -q --no-deps --no-build-isolation /src \
 && rm -rf /src

# AWS's RDS CA bundle, fetched by image/build.sh (image/rds-ca/README.md): verify-full against it.
COPY image/rds-ca/ /usr/local/share/pilotlight/rds-ca/

ENV PATH=/opt/pilotlight/bin:$PATH \
    PILOTLIGHT_PG_BIN=/usr/lib/postgresql/${PG_MAJOR}/bin \
    PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --home-dir /home/pilotlight --create-home pilotlight
USER 10001
WORKDIR /home/pilotlight
ENTRYPOINT ["pilotlight"]
