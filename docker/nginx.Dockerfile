# nginx terminating TLS in front of the wspushd nodes (compose.yaml). Build from the repository
# root: docker build -f docker/nginx.Dockerfile . The nginx configuration itself is
# docker/nginx/wspush.conf, rendered by docker/nginx/render-conf.sh from WSPUSH_NGINX_*
# variables; docker/nginx-entrypoint.sh makes the certificate, renders and starts nginx.
ARG DEBIAN_SLIM=debian:bookworm-slim
FROM ${DEBIAN_SLIM}
# openssl: the self-signed certificate made at first start.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx openssl \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/wspush-nginx/tls /run/wspush-nginx \
 && chown -R www-data:www-data /var/lib/wspush-nginx /run/wspush-nginx /var/lib/nginx /var/log/nginx
COPY docker/nginx/ /usr/local/lib/wspush-nginx/
COPY docker/nginx-entrypoint.sh /usr/local/bin/wspush-nginx
# Not root: the ports inside the container are above 1024 (compose.yaml maps them), and nginx's
# compiled-in paths it still touches (/var/lib/nginx, /var/log/nginx) belong to www-data.
USER www-data
# The certificate and key live here; a volume keeps them across container re-creation, so
# clients that pinned or accepted the self-signed certificate once keep working.
VOLUME /var/lib/wspush-nginx
ENV WSPUSH_NGINX_PUBLIC_LISTEN=8443 \
    WSPUSH_NGINX_API_LISTEN=8081 \
    WSPUSH_NGINX_CERT=/var/lib/wspush-nginx/tls/cert.pem \
    WSPUSH_NGINX_KEY=/var/lib/wspush-nginx/tls/key.pem \
    WSPUSH_NGINX_PREFIX=/run/wspush-nginx
EXPOSE 8443 8081
# nginx's graceful stop is SIGQUIT (finish requests, then exit); SIGTERM is its fast stop.
# WebSockets are long-lived either way, so a graceful stop waits for them only up to the stop
# timeout; clients reconnect through the next nginx.
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/usr/local/bin/wspush-nginx"]
