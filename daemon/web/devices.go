package web

import (
	"net/http"

	"github.com/keyfleet/keyfleet/api"
	"github.com/keyfleet/keyfleet/daemon/core"
)

type devicesPage struct {
	State   string
	States  []string
	Devices []core.Device
	Factors map[string][]string
	Next    string
}

func (h *handler) devices(rq *request) error {
	q := rq.r.URL.Query()
	d := devicesPage{State: q.Get("state"), States: []string{api.DeviceInStock, api.DeviceAssigned, api.DeviceActive, api.DeviceReturned, api.DeviceLost, api.DeviceRetired, api.DeviceDestroyed}}
	var err error
	d.Devices, d.Factors, d.Next, err = h.svc.ListDevices(rq.ctx, rq.p, core.DeviceFilter{State: d.State}, core.PageReq{After: q.Get("after"), Limit: 100})
	if err != nil {
		return err
	}
	h.render(rq, http.StatusOK, "devices", "Devices", d)
	return nil
}
