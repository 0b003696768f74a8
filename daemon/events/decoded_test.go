package events

import "testing"

func TestDecodedEventsKeepTheLatestPerSlot(t *testing.T) {
	var d decodedEvents
	if _, ok := d.get(1); ok {
		t.Fatal("an empty cache found seq 1")
	}
	ev := Event{Schema: Schema}
	ev.Seq = 7
	d.put(7, ev)
	if got, ok := d.get(7); !ok || got.Seq != 7 {
		t.Fatalf("get(7) = %+v, %v", got, ok)
	}
	d.put(7+decodedSize, Event{})
	if _, ok := d.get(7); ok {
		t.Fatal("seq 7 survived a later event in its slot")
	}
	if _, ok := d.get(7 + 2*decodedSize); ok {
		t.Fatal("another seq in the same slot was found")
	}
}
