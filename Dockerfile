# syntax=docker/dockerfile:1.7
# One image for every role: `traffic-hub api | normaliser | connectors | run`.
# Not built on the development machines (no Docker engine there); kept simple and standard.

FROM node:20-bookworm-slim AS map
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# dependencies first (cached while only the source changes)
COPY pyproject.toml README.md ./
RUN mkdir -p traffic_hub connectors geo && touch traffic_hub/__init__.py connectors/__init__.py geo/__init__.py \
 && pip install . && pip uninstall -y traffic-hub
COPY traffic_hub ./traffic_hub
COPY connectors ./connectors
COPY geo ./geo
RUN pip install --no-deps . && python -m compileall -q /opt/venv

FROM python:3.11-slim-bookworm
WORKDIR /app
# the rendered feeds are saved here, so a restarted container serves in seconds (a volume keeps them
# across new containers too); replicas of one configuration may share it
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    TRAFFIC_HUB_HTTP_HOST=0.0.0.0 TRAFFIC_HUB_HTTP_PORT=8000 \
    TRAFFIC_HUB_FEEDS__SNAPSHOT_DIR=/var/lib/traffic-hub/feeds \
    NUMBA_CACHE_DIR=/var/lib/traffic-hub/numba
# the matcher's compiled kernels (geo/compiled.py, geo/bounded.py) are cached by numba: the package
# directory is read-only for `hub`, and without a writable cache numba refuses to load them (the matcher
# then falls back to numpy, ≈ 2–3× slower)
RUN useradd --system --uid 10001 --home /nonexistent hub \
 && mkdir -p /var/lib/traffic-hub/feeds /var/lib/traffic-hub/numba && chown -R hub /var/lib/traffic-hub
COPY --from=build /opt/venv /opt/venv
# browser assets are served from node_modules next to the package, never from a CDN: the map's MapLibre
# (traffic_hub/api/map.py) and the API docs' Swagger UI and ReDoc (traffic_hub/api/docs.py); only the
# served files and their licences are copied (ReDoc's build dependencies stay in the build stage)
ARG NM=/opt/venv/lib/python3.11/site-packages/node_modules
COPY --from=map /src/node_modules/maplibre-gl/dist $NM/maplibre-gl/dist
COPY --from=map /src/node_modules/maplibre-gl/LICENSE.txt $NM/maplibre-gl/
COPY --from=map /src/node_modules/swagger-ui-dist/swagger-ui-bundle.js /src/node_modules/swagger-ui-dist/swagger-ui.css \
     /src/node_modules/swagger-ui-dist/favicon-32x32.png /src/node_modules/swagger-ui-dist/LICENSE $NM/swagger-ui-dist/
COPY --from=map /src/node_modules/redoc/bundles/redoc.standalone.js $NM/redoc/bundles/
COPY --from=map /src/node_modules/redoc/LICENSE $NM/redoc/
USER hub
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["traffic-hub"]
CMD ["run"]
