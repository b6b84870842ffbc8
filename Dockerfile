# FGD Sync: one image for the API and the workers (the command picks the process).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY fgd_core fgd_core
COPY fgd_workers fgd_workers
COPY fgd_api fgd_api
COPY schemas schemas
COPY examples examples
RUN pip install --no-cache-dir .
RUN useradd --system --home /var/lib/fgd fgd && mkdir -p /var/lib/fgd && chown fgd /var/lib/fgd
USER fgd
ENV HEDGEHOG_FGD_SQLITE_PATH=/var/lib/fgd/fgd.sqlite3
EXPOSE 8000
CMD ["fgd", "serve", "--host", "0.0.0.0", "--port", "8000"]
