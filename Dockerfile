FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY ssi_plugin ./ssi_plugin
COPY index_templates ./index_templates
COPY integration ./integration
# The core install (ssi-plugin serve and the library), at the versions tested; no extras.
RUN pip install --no-cache-dir -c constraints.txt .
ENTRYPOINT ["ssi-plugin"]
