FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ssi_plugin ./ssi_plugin
COPY index_templates ./index_templates
COPY integration ./integration
RUN pip install --no-cache-dir .
ENTRYPOINT ["ssi-plugin"]
