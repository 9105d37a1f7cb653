package config_test

import (
	"fmt"

	"github.com/camgate/camgate/gateway/config"
)

func ExampleConfig_String() {
	cfg := config.Default()
	cfg.Redis.URL = "redis://:hunter2@127.0.0.1:6379/0"
	cfg.Auth.ViewerJWT.HS256Secret = "0123456789abcdef0123456789abcdef"
	cfg.Auth.AdminKeys = []string{"0123456789abcdef0123"}
	cfg.Cameras = []config.Camera{{ID: "cam1", Site: "hq", Source: "rtsp://admin:pw@10.0.0.5/stream1", Record: true}}
	fmt.Print(cfg.String())
	// Output:
	// data_dir: ./camgate-data
	// public_url: http://localhost:8080
	// log_format: text
	// log_level: info
	// rtsp:
	//   listen: :8554
	//   udp_rtp_listen: :8000
	//   udp_rtcp_listen: :8001
	//   rtsps_listen: ""
	//   idle_timeout: 10s
	//   max_conns_per_ip: 256
	//   auth_methods:
	//     - basic
	//   upstream_udp_read_buffer: 0
	// http:
	//   listen: :8080
	//   max_body_bytes: 1048576
	// tls:
	//   cert_file: ""
	//   key_file: ""
	// webrtc:
	//   udp_mux_listen: :8189
	//   port_min: 0
	//   port_max: 0
	//   nat1to1_ips: []
	//   include_loopback: false
	//   allow_origin: '*'
	// redis:
	//   url: redis://:REDACTED@127.0.0.1:6379/0
	//   outage_grace: 5m
	// auth:
	//   viewer_jwt:
	//     hs256_secret: REDACTED
	//     public_keys: []
	//     jwks_url: ""
	//     issuer: ""
	//     audience: ""
	//     leeway: 30s
	//   admin_keys:
	//     - REDACTED
	// archive:
	//   retention: 168h
	//   max_download: 1h
	//   segment_duration: 10s
	//   max_bytes: 0
	// sessions:
	//   upstream_linger: 10s
	//   gop_cache: always
	//   audio_transcode: auto
	// limits:
	//   max_sessions_per_subject: 0
	//   max_sessions_per_camera: 0
	//   auth_failures_per_minute: 30
	// ptz:
	//   timeout: 5s
	//   lease_ttl: 5s
	//   priority:
	//     - privacy_manager
	//     - company
	//     - installer
	//     - user
	// cluster:
	//   enabled: false
	//   node_id: ""
	//   advertise: ""
	//   advertise_http: ""
	//   secret: ""
	//   lease_ttl: 5s
	// cameras:
	//   - id: cam1
	//     site: hq
	//     name: ""
	//     source: rtsp://admin:REDACTED@10.0.0.5/stream1
	//     record: true
	//     transport: ""
	//     udp_read_buffer: 0
}
