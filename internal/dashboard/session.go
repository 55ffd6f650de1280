package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

// Names the browser sees.
const (
	// CookieName is the session cookie.
	CookieName = "canarymesh_session"
	// HeaderCSRF must be present on every POST: cross-site forms cannot set it.
	HeaderCSRF = "X-Canarymesh-Dashboard"
	// DefaultSessionTTL is how long a login lasts.
	DefaultSessionTTL = 12 * time.Hour
)

// sessions are the logged-in browsers, in memory: a restart logs everyone out.
type sessions struct {
	mu   sync.Mutex
	byID map[string]time.Time // id → expiry
	ttl  time.Duration
	now  func() time.Time
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{byID: map[string]time.Time{}, ttl: ttl, now: now}
}

// create starts a session and returns its id and expiry.
func (s *sessions) create() (string, time.Time, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", time.Time{}, err
	}
	id := hex.EncodeToString(buf)
	exp := s.now().Add(s.ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Forget expired sessions here, so the map stays as small as the live logins.
	now := s.now()
	for k, e := range s.byID {
		if !now.Before(e) {
			delete(s.byID, k)
		}
	}
	s.byID[id] = exp
	return id, exp, nil
}

// sessionState is what a request's cookie says.
type sessionState int

const (
	noSession      sessionState = iota // no cookie at all
	expiredSession                     // a cookie this server does not know (expired, or before a restart)
	validSession
)

// check looks up the request's session.
func (s *sessions) check(r *http.Request) (sessionState, time.Time) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return noSession, time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, exp := range s.byID {
		if subtle.ConstantTimeCompare([]byte(id), []byte(c.Value)) == 1 {
			if s.now().Before(exp) {
				return validSession, exp
			}
			delete(s.byID, id)
			return expiredSession, time.Time{}
		}
	}
	return expiredSession, time.Time{}
}

// end forgets the request's session.
func (s *sessions) end(r *http.Request) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, c.Value)
}

func sessionCookie(r *http.Request, value string, exp time.Time, ttl time.Duration) *http.Cookie {
	c := &http.Cookie{Name: CookieName, Value: value, Path: "/ui/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = exp
		c.MaxAge = int(ttl.Seconds())
	}
	return c
}
