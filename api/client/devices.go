package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/keyfleet/keyfleet/api"
)

// ReturnDevice calls POST /v1/devices/{id}/return: the key is back with
// IT; its factors are revoked at once, or wait for approval (then
// DeviceReturn.Approvals is not empty).
func (c *Client) ReturnDevice(ctx context.Context, id string, in api.ReturnDevice) (api.DeviceReturn, error) {
	var out api.DeviceReturn
	_, err := c.do(ctx, http.MethodPost, p("/v1/devices/%s/return", id), nil, in, &out)
	return out, err
}

// CheckDeviceWipe calls POST /v1/devices/{id}/wipe/check: whether an
// agent may wipe the key now and report it as planned says, without
// changing anything.
func (c *Client) CheckDeviceWipe(ctx context.Context, id string, planned api.DeviceWipe) (api.Device, error) {
	var d api.Device
	_, err := c.do(ctx, http.MethodPost, p("/v1/devices/%s/wipe/check", id), nil, planned, &d)
	return d, err
}

// ReportDeviceWipe calls POST /v1/devices/{id}/wipe: the key's applets
// were reset as in says, and it goes back to stock.
func (c *Client) ReportDeviceWipe(ctx context.Context, id string, in api.DeviceWipe) (api.Device, error) {
	var d api.Device
	_, err := c.do(ctx, http.MethodPost, p("/v1/devices/%s/wipe", id), nil, in, &d)
	return d, err
}

// AssignDevice calls POST /v1/devices/{id}/assign.
func (c *Client) AssignDevice(ctx context.Context, id string, in api.AssignDevice) (api.Device, error) {
	var d api.Device
	_, err := c.do(ctx, http.MethodPost, p("/v1/devices/%s/assign", id), nil, in, &d)
	return d, err
}

// RetireDevice calls POST /v1/devices/{id}/retire.
func (c *Client) RetireDevice(ctx context.Context, id string, in api.RetireDevice) (api.Device, error) {
	var d api.Device
	_, err := c.do(ctx, http.MethodPost, p("/v1/devices/%s/retire", id), nil, in, &d)
	return d, err
}

// DeviceInventory calls GET /v1/devices/inventory; state "" counts every
// state.
func (c *Client) DeviceInventory(ctx context.Context, state string) ([]api.InventoryRow, error) {
	var rows []api.InventoryRow
	var q url.Values
	if state != "" {
		q = url.Values{"state": {state}}
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/devices/inventory", q, nil, &rows)
	return rows, err
}

// DeviceBySerial finds the device keyfleetd knows by a serial; found is
// false for a key it has never seen.
func (c *Client) DeviceBySerial(ctx context.Context, vendor, serial string) (d api.Device, found bool, err error) {
	pg, err := c.ListDevices(ctx, DeviceFilter{Serial: serial, Limit: 10})
	if err != nil {
		return api.Device{}, false, err
	}
	for _, d := range pg.Items {
		if d.Vendor == vendor {
			return d, true, nil
		}
	}
	return api.Device{}, false, nil
}

// PreflightEnrolment calls POST /v1/enrolments/{id}/preflight: whether
// the enrolment can be completed on this key, asked before the key is
// changed.
func (c *Client) PreflightEnrolment(ctx context.Context, id string, in api.Preflight) (api.PreflightResult, error) {
	var out api.PreflightResult
	_, err := c.do(ctx, http.MethodPost, p("/v1/enrolments/%s/preflight", id), nil, in, &out)
	return out, err
}
