# The image the Kubernetes manifests in deploy/ run: the controller, the sidecar proxy
# (`canarymesh proxy`) and the traffic-redirection init container (`canarymesh inject
# init`, which needs iptables) are the one binary with different arguments.
#
#   docker build -t registry.example/canarymesh:v0.1.0 .
#   helm install canarymesh deploy/helm/canarymesh -n canarymesh-system --create-namespace \
#     --set image.repository=registry.example/canarymesh --set image.tag=v0.1.0
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/canarymesh ./cmd/canarymesh

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/canarymesh /usr/local/bin/canarymesh
# The proxy runs as UID 1337, the UID the redirection rules let out unchanged (App
# Mesh's convention); the controller and the init container set their own user.
ENTRYPOINT ["canarymesh"]
