package ptz

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // WS-Security PasswordDigest is defined with SHA-1
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// maxResponseSize bounds what we read from a camera; a GetPresets answer of a
// few hundred presets is well below it.
const maxResponseSize = 1 << 20

// credentials for WS-Security; an empty username sends no security header.
type credentials struct {
	username, password string
}

// soapClient sends ONVIF requests. It is shared by every camera of a
// Controller and holds no per-camera state.
type soapClient struct {
	http    *http.Client
	timeout atomic.Int64 // a time.Duration; Controller.SetTimeout changes it
	now     func() time.Time
}

// requestTimeout is the deadline of one request to a camera.
func (c *soapClient) requestTimeout() time.Duration { return time.Duration(c.timeout.Load()) }

// call posts req to endpoint as SOAP 1.2 and decodes the answer into resp
// (nil to ignore the body). ns and op form the SOAP action.
func (c *soapClient) call(ctx context.Context, endpoint string, cred credentials, ns, op string, req, resp any) error {
	body, err := c.marshal(cred, req)
	if err != nil {
		return fmt.Errorf("ptz: %s: encode request: %w", op, err)
	}
	reqCtx, cancel := context.WithTimeout(ctx, time.Duration(c.timeout.Load()))
	defer cancel()
	hreq, err := http.NewRequestWithContext(reqCtx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotConfigured, op, err)
	}
	hreq.Header.Set("Content-Type", `application/soap+xml; charset=utf-8; action="`+ns+"/"+op+`"`)
	hres, err := c.http.Do(hreq)
	if err != nil {
		return transportError(ctx, op, err)
	}
	defer hres.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(hres.Body, maxResponseSize+1))
	if err != nil {
		return transportError(ctx, op, err)
	}
	if len(raw) > maxResponseSize {
		return &CameraError{Op: op, Reason: "answer larger than 1 MiB"}
	}
	return decodeResponse(op, hres.StatusCode, raw, resp)
}

func decodeResponse(op string, status int, raw []byte, resp any) error {
	var env envelopeIn
	envErr := xml.Unmarshal(raw, &env)
	if envErr == nil && env.Body.Fault != nil {
		return &CameraError{Op: op, Code: cameraText(env.Body.Fault.code()), Reason: cameraText(env.Body.Fault.reason())}
	}
	if status < 200 || status > 299 {
		reason := fmt.Sprintf("HTTP %d without a SOAP fault", status)
		if status == http.StatusUnauthorized {
			reason = "HTTP 401: credentials rejected (the camera may require HTTP digest auth)"
		}
		return &CameraError{Op: op, Reason: reason}
	}
	if envErr != nil {
		return &CameraError{Op: op, Reason: "answer is not a SOAP envelope"}
	}
	if resp == nil {
		return nil
	}
	if err := xml.Unmarshal(env.Body.Inner, resp); err != nil {
		return &CameraError{Op: op, Reason: cameraText("malformed answer: " + err.Error())}
	}
	return nil
}

// transportError classifies a failure to get an answer. ctx is the caller's
// context: its cancellation is the caller leaving, not the camera's fault.
func transportError(ctx context.Context, op string, err error) error {
	var netErr net.Error
	switch {
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("ptz: %s: %w", op, ctx.Err())
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%w: %s: %w", ErrTimeout, op, err)
	default:
		// Refused, reset, no route, DNS: all "cannot talk to it".
		return fmt.Errorf("%w: %s: %w", ErrUnreachable, op, err)
	}
}

func (c *soapClient) marshal(cred credentials, req any) ([]byte, error) {
	var header *headerOut
	if cred.username != "" {
		h, err := c.security(cred)
		if err != nil {
			return nil, err
		}
		header = h
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(newEnvelope(header, req)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// security builds a UsernameToken with a fresh nonce:
// Password = Base64(SHA1(nonce + created + password)).
func (c *soapClient) security(cred credentials) (*headerOut, error) {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	created := c.now().UTC().Format("2006-01-02T15:04:05.000Z")
	return &headerOut{Security: securityOut{
		NsWSSE: nsWSSE, NsWSU: nsWSU, MustUnderstand: "1",
		Token: usernameTokenOut{
			Username: cred.username,
			Password: typedString{Type: wsPasswordDigest, Value: passwordDigest(nonce[:], created, cred.password)},
			Nonce:    typedString{Enc: wsBase64Binary, Value: base64.StdEncoding.EncodeToString(nonce[:])},
			Created:  created,
		},
	}}, nil
}

func passwordDigest(nonce []byte, created, password string) string {
	h := sha1.New() //nolint:gosec // mandated by the UsernameToken profile
	h.Write(nonce)
	h.Write([]byte(created))
	h.Write([]byte(password))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
