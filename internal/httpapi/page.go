package httpapi

// adminPage mounts the admin web page (issue 6). Until it exists, nothing is served.
func (s *Server) adminPage() {}
