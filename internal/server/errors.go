package server

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// codeInfo is what an error code becomes on each transport.
type codeInfo struct {
	// status is the HTTP status of an HTTP response with this code.
	status int
	// close is the WebSocket close code used when this error ends a
	// connection before it is established (during hello); after hello,
	// errors are error frames and the connection stays up.
	close int
}

// codes is the one table from error code to HTTP status and close code.
// docs/protocol.md prints it; keep them in step.
var codes = map[string]codeInfo{
	parley.EINVALID:      {http.StatusBadRequest, protocol.CloseProtocolError},
	parley.EBADJSON:      {http.StatusBadRequest, protocol.CloseProtocolError},
	parley.EUNKNOWNOP:    {http.StatusBadRequest, protocol.CloseProtocolError},
	parley.ENOTFOUND:     {http.StatusNotFound, protocol.CloseProtocolError},
	parley.ECONFLICT:     {http.StatusConflict, protocol.CloseProtocolError},
	parley.EUNAUTHORIZED: {http.StatusUnauthorized, protocol.CloseUnauthorized},
	parley.EFORBIDDEN:    {http.StatusForbidden, protocol.CloseProtocolError}, // 4102 is reserved
	parley.ERATELIMITED:  {http.StatusTooManyRequests, protocol.CloseReconnect},
	parley.ETOOLARGE:     {http.StatusRequestEntityTooLarge, protocol.CloseTooLarge},
	parley.EUNSUPPORTED:  {http.StatusUnsupportedMediaType, protocol.CloseProtocolError},
	parley.EUNAVAILABLE:  {http.StatusServiceUnavailable, protocol.CloseShutdown},
	parley.EINTERNAL:     {http.StatusInternalServerError, protocol.CloseReconnect},
}

func info(code string) codeInfo {
	if ci, ok := codes[code]; ok {
		return ci
	}
	return codes[parley.EINTERNAL]
}

// errorBody turns err into the wire's error payload. Errors that are not
// *parley.Error are internal: they are logged and reach the client as a
// generic message. An `unavailable` error with a cause (a store that
// cannot write) is logged as a warning. The server's logger throttles
// both (throttledHandler): one line per kind every 10 s, not per request.
func errorBody(log *slog.Logger, err error) *protocol.ErrorBody {
	code := parley.ErrorCode(err)
	var pe *parley.Error
	isPE := errors.As(err, &pe)
	switch {
	case code == parley.EINTERNAL:
		log.Error("internal error", "err", err)
	case code == parley.EUNAVAILABLE && error(pe) != err:
		log.Warn("unavailable", "err", err)
	}
	b := &protocol.ErrorBody{Code: code, Message: parley.ErrorMessage(err)}
	if isPE && pe.RetryAfter > 0 {
		b.RetryAfterMS = max(1, pe.RetryAfter.Milliseconds())
	}
	return b
}

// writeError writes err as an HTTP JSON error response, counted in
// parley_errors_total.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	b := errorBody(s.log, err)
	s.metrics.obs.countError(b.Code)
	if b.RetryAfterMS > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt((b.RetryAfterMS+999)/1000, 10))
	}
	writeJSON(w, info(b.Code).status, struct {
		Error *protocol.ErrorBody `json:"error"`
	}{b})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
