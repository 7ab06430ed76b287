package server

// OnHashAdmit makes f be called with the client IP of each password hash
// that gets a slot, in order (auth.Hasher.SetOnAdmit).
func (s *Server) OnHashAdmit(f func(ip string)) { s.svc.hasher.SetOnAdmit(f) }

// LoginAccountsTracked is how many accounts the login back-off remembers.
func (s *Server) LoginAccountsTracked() int { return s.svc.logins.size() }
