# syntax=docker/dockerfile:1
# camgate: multi-stage build of a static binary into a minimal, non-root image.
#   docker build -t camgate .
#   docker run -p 8554:8554 -p 8080:8080 -v camgate-data:/data camgate demo
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/camgate ./cmd/camgate \
 && mkdir -p /out/data \
 && echo 'camgate:x:65532:65532:camgate:/data:/sbin/nologin' > /out/passwd \
 && echo 'camgate:x:65532:' > /out/group

# The final image is the static binary, CA certificates (for a JWKS URL over
# https and rtsps cameras), a passwd entry for the non-root user, and /data.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build /out/camgate /camgate
# The embedded store, demo secrets and the archive live in /data, owned by the
# image's non-root user (uid 65532) so a fresh volume is writable.
COPY --from=build --chown=65532:65532 /out/data /data
ENV CAMGATE_DATA_DIR=/data
VOLUME ["/data"]
WORKDIR /data
USER 65532:65532
# RTSP (TCP), RTP/RTCP over UDP, HTTP (API, HLS, WHEP, archive, share links),
# WebRTC ICE (one UDP port; set webrtc.nat1to1_ips to the host's public IP).
EXPOSE 8554/tcp 8000/udp 8001/udp 8080/tcp 8189/udp
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 CMD ["/camgate", "healthcheck"]
ENTRYPOINT ["/camgate"]
CMD ["serve"]
