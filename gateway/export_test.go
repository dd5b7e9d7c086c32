package gateway

// Hooks into unexported code for the external tests.

// VerifyFast is the fast path's own answer: claims and true, or false for
// "ask golang-jwt".
func (a *Auth) VerifyFast(token string) (*Claims, bool) { return a.fast.verify(token) }

// VerifySlow is golang-jwt's answer alone.
func (a *Auth) VerifySlow(token string) (*Claims, error) { return a.verifySlow(token) }
