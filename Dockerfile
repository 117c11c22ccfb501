# The LastWatt image: the controller (`lastwatt`), the firmware bridge (`lastwatt-bridge`) and
# the simulated device fleet (`lastwatt devices`) all run from it (see docker-compose.yml).
FROM python:3.11.9-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE requirements.lock ./
COPY lastwatt ./lastwatt
COPY firmware_bridge ./firmware_bridge
# the pinned versions of requirements.lock, as in CI
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c requirements.lock .

FROM python:3.11.9-slim-bookworm
RUN useradd --create-home --uid 10001 lastwatt \
    && mkdir -p /data && chown lastwatt:lastwatt /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER lastwatt
WORKDIR /data
VOLUME ["/data"]
CMD ["lastwatt", "--help"]
