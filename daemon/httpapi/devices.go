package httpapi

import (
	"net/http"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

// deviceLifecycleRoutes serve the device lifecycle (docs/devices.md).
func (h *Handler) deviceLifecycleRoutes() {
	h.route("GET /v1/devices/inventory", core.ReadDevices, h.deviceInventory)
	h.route("POST /v1/devices/{id}/return", core.ReturnDevices, h.returnDevice)
	h.route("POST /v1/devices/{id}/wipe/check", core.WipeDevices, h.checkDeviceWipe)
	h.route("POST /v1/devices/{id}/wipe", core.WipeDevices, h.deviceWiped)
	h.route("POST /v1/devices/{id}/assign", core.AssignDevices, h.assignDevice)
	h.route("POST /v1/devices/{id}/retire", core.RetireDevices, h.retireDevice)
}

func (h *Handler) deviceInventory(r *http.Request, p core.Principal) (int, any, error) {
	rows, err := h.svc.DeviceInventory(r.Context(), p, r.URL.Query().Get("state"))
	return http.StatusOK, rows, err
}

func (h *Handler) returnDevice(r *http.Request, p core.Principal) (int, any, error) {
	var in api.ReturnDevice
	if err := decode(r, &in, true); err != nil {
		return 0, nil, err
	}
	out, err := h.svc.ReturnDevice(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return 0, nil, err
	}
	res := api.DeviceReturn{Device: h.deviceView(r, p, out.Device), Revoked: nonNilIDs(out.Revoked), Approvals: []api.Approval{}}
	for _, a := range out.Approvals {
		res.Approvals = append(res.Approvals, a.API(h.svc.Now()))
	}
	status := http.StatusOK
	if len(out.Approvals) > 0 {
		status = http.StatusAccepted // revocations wait for a second approver
	}
	return status, res, nil
}

// deviceView is d with the ids of the factors on it, when p may still
// read it (a user who returned their own key may not: it is no longer
// theirs).
func (h *Handler) deviceView(r *http.Request, p core.Principal, d core.Device) api.Device {
	if _, ids, err := h.svc.GetDevice(r.Context(), p, d.ID); err == nil {
		return d.API(ids)
	}
	return d.API(nil)
}

func nonNilIDs(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}

func (h *Handler) checkDeviceWipe(r *http.Request, p core.Principal) (int, any, error) {
	var in api.DeviceWipe
	if err := decode(r, &in, true); err != nil {
		return 0, nil, err
	}
	d, err := h.svc.CheckDeviceWipe(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, h.deviceView(r, p, d), nil
}

func (h *Handler) deviceWiped(r *http.Request, p core.Principal) (int, any, error) {
	var in api.DeviceWipe
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	d, err := h.svc.ReportDeviceWipe(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, h.deviceView(r, p, d), nil
}

func (h *Handler) assignDevice(r *http.Request, p core.Principal) (int, any, error) {
	var in api.AssignDevice
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	d, err := h.svc.AssignDevice(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, h.deviceView(r, p, d), nil
}

func (h *Handler) retireDevice(r *http.Request, p core.Principal) (int, any, error) {
	var in api.RetireDevice
	if err := decode(r, &in, true); err != nil {
		return 0, nil, err
	}
	d, err := h.svc.RetireDevice(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, h.deviceView(r, p, d), nil
}

func (h *Handler) preflightEnrolment(r *http.Request, p core.Principal) (int, any, error) {
	var in api.Preflight
	if err := decode(r, &in, false); err != nil {
		return 0, nil, err
	}
	pf, err := h.svc.PreflightEnrolment(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return 0, nil, err
	}
	out := api.PreflightResult{Params: pf.Params, Checks: pf.Checks}
	if pf.Device != nil {
		d := pf.Device.API(nil)
		out.Device = &d
	}
	return http.StatusOK, out, nil
}
