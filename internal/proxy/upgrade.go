package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// tunnel forwards an HTTP/1.1 Upgrade (WebSocket and the like): the upgrade request
// goes upstream once (never retried); on 101 both connections are taken over and
// spliced until either side closes or the route's idle timeout passes without traffic.
func (x *exchange) tunnel() {
	r := x.r
	upgrade := r.Header.Get("Upgrade")
	removeHopHeaders(r.Header)
	r.Header["Connection"] = []string{"Upgrade"}
	r.Header["Upgrade"] = []string{upgrade}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	timer := time.AfterFunc(x.route.timeout, func() { cancel(errRouteTimeout) })
	ep := x.pickEndpoint(nil)
	if ep == nil {
		timer.Stop()
		x.up.stats.noneHealthy.Add(1)
		x.fail(errNoHealthy)
		return
	}
	lim := x.up.limiter.Load()
	if err := lim.acquire(ctx, &x.up.stats.rqPendingActive); err != nil {
		timer.Stop()
		x.fail(err)
		return
	}
	x.ep, x.lim = ep, lim
	x.up.stats.rqActive.Add(1)
	x.attemptStart = x.p.now()
	res, err := x.up.transport.RoundTrip(x.outbound(ctx, ep))
	if !timer.Stop() && err == nil {
		res.Body.Close()
		err = errRouteTimeout
	}
	if err != nil {
		if !errors.Is(err, errRouteTimeout) {
			err = &attemptError{a: classify(nil, err, ctx)}
		}
		x.fail(err)
		return
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		x.respond(ctx, res, cancel)
		return
	}
	x.splice101(res)
}

// splice101 takes over the downstream connection and splices it with the upstream one.
func (x *exchange) splice101(res *http.Response) {
	backend, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		res.Body.Close()
		x.localReply(http.StatusBadGateway, "UPE", "upstream switched protocols without a connection")
		return
	}
	defer backend.Close()
	conn, brw, err := http.NewResponseController(x.w).Hijack()
	if err != nil {
		x.localReply(http.StatusInternalServerError, "", fmt.Sprintf("cannot take over the connection: %v", err))
		return
	}
	x.code, x.wroteHead = http.StatusSwitchingProtocols, true
	x.upstreamTime = x.p.now().Sub(x.attemptStart)
	if !x.l.track(conn) {
		conn.Close()
		return
	}
	defer x.l.untrack(conn)
	defer conn.Close()
	conn.SetDeadline(time.Time{}) // the server's read and write deadlines no longer apply
	if err := writeHead(brw.Writer, res); err != nil {
		return
	}
	splice(conn, brw.Reader, backend, x.route.idle)
}

func writeHead(w *bufio.Writer, res *http.Response) error {
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\n", res.StatusCode, http.StatusText(res.StatusCode))
	if err := res.Header.Write(w); err != nil {
		return err
	}
	w.WriteString("\r\n")
	return w.Flush()
}
