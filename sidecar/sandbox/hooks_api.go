package sandbox

import "net/http"

type hookRequest struct {
	EventKey string `json:"eventKey"`
	HookURL  string `json:"hookUrl"`
}

func (a *restAPI) listEventKeys(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, EventKeys)
	return nil
}

func (a *restAPI) listHooks(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, a.hooks.list())
	return nil
}

func (a *restAPI) createHook(w http.ResponseWriter, r *http.Request) error {
	var in hookRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	h, err := a.hooks.create(r.Context(), in.EventKey, in.HookURL)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (a *restAPI) getHook(w http.ResponseWriter, r *http.Request) error {
	h, err := a.hooks.get(r.PathValue("key"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (a *restAPI) updateHook(w http.ResponseWriter, r *http.Request) error {
	var in hookRequest
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	h, err := a.hooks.update(r.Context(), r.PathValue("key"), in.EventKey, in.HookURL)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (a *restAPI) deleteHook(w http.ResponseWriter, r *http.Request) error {
	if err := a.hooks.delete(r.PathValue("key")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *restAPI) verifyHook(w http.ResponseWriter, r *http.Request) error {
	h, err := a.hooks.verify(r.Context(), r.PathValue("key"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (a *restAPI) delayedVerifyHook(w http.ResponseWriter, r *http.Request) error {
	h, err := a.hooks.delayedVerify(r.PathValue("key"), r.Header.Get("X-Hook-Secret"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}
