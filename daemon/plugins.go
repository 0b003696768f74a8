package daemon

import (
	"context"
	"sync"

	"github.com/keyfleet/keyfleet/daemon/core"
)

// pluginEvents turns the plugin host's reports into audit events. The host
// reports while plugins load, before the domain service exists, so events
// wait in a queue until attach.
type pluginEvents struct {
	mu      sync.Mutex
	svc     *core.Service
	pending []pluginEvent
}

type pluginEvent struct {
	action, name string
	extra        map[string]string
}

func (p *pluginEvents) PluginRefused(name, reason string) {
	p.record(pluginEvent{"plugin.refused", name, map[string]string{"reason": reason}})
}

func (p *pluginEvents) PluginRestarted(name string) {
	p.record(pluginEvent{"plugin.restarted", name, nil})
}

func (p *pluginEvents) record(e pluginEvent) {
	p.mu.Lock()
	svc := p.svc
	if svc == nil {
		p.pending = append(p.pending, e)
	}
	p.mu.Unlock()
	if svc != nil {
		p.write(svc, e)
	}
}

func (p *pluginEvents) write(svc *core.Service, e pluginEvent) {
	// The host calls from its own goroutines; failing to audit is logged
	// by the store, and the plugin's own log line stands either way.
	_ = svc.RecordEvent(context.Background(), e.action, "plugin", e.name, e.extra)
}

// attach hands the queue to the service and writes what waited.
func (p *pluginEvents) attach(svc *core.Service) {
	p.mu.Lock()
	pending := p.pending
	p.svc, p.pending = svc, nil
	p.mu.Unlock()
	for _, e := range pending {
		p.write(svc, e)
	}
}
