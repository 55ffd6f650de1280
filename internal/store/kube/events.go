package kube

import (
	"context"
	"k8s.io/apimachinery/pkg/types"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// coreEvent is the core/v1 Event that mirrors ev.
func (s *Store) coreEvent(ev *v1alpha1.Event) *corev1.Event {
	src := ev.Source
	if src == "" {
		src = s.opts.EventSource
	}
	apiVersion := v1alpha1.APIVersion
	if k, err := v1alpha1.LookupKind(ev.InvolvedObject.Kind); err == nil {
		apiVersion = k.APIVersion
	}
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: ev.Name, Namespace: ev.Namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "canarymesh"}},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: apiVersion, Kind: ev.InvolvedObject.Kind, Namespace: ev.InvolvedObject.Namespace,
			Name: ev.InvolvedObject.Name, UID: typesUID(ev.InvolvedObject.UID),
		},
		Reason: ev.Reason, Message: ev.Message, Type: ev.Type, Count: ev.Count,
		FirstTimestamp: ev.FirstTimestamp, LastTimestamp: ev.LastTimestamp,
		Source: corev1.EventSource{Component: src},
	}
}

// mirrorEvent writes the core/v1 twin of a stored Event; other kinds are left alone.
func (s *Store) mirrorEvent(ctx context.Context, obj v1alpha1.Object) {
	ev, ok := obj.(*v1alpha1.Event)
	if !ok || s.opts.NoCoreEvents || ev.Namespace == "" {
		return
	}
	r, err := s.ref(mustKind("Namespace"))
	if err != nil {
		return
	}
	want := s.coreEvent(ev)
	var cur corev1.Event
	err = r.rc.Get().Namespace(ev.Namespace).Resource("events").Name(ev.Name).Do(ctx).Into(&cur)
	switch {
	case apierrors.IsNotFound(err):
		err = r.rc.Post().Namespace(ev.Namespace).Resource("events").Body(want).Do(ctx).Error()
	case err == nil:
		want.ResourceVersion = cur.ResourceVersion
		err = r.rc.Put().Namespace(ev.Namespace).Resource("events").Name(ev.Name).Body(want).Do(ctx).Error()
	}
	if err != nil {
		s.log.Debug("core event mirror not written", "event", ev.Namespace+"/"+ev.Name, "err", err)
	}
}

// unmirrorEvent removes the core/v1 twin of a removed Event.
func (s *Store) unmirrorEvent(ctx context.Context, obj v1alpha1.Object) {
	ev, ok := obj.(*v1alpha1.Event)
	if !ok || s.opts.NoCoreEvents || ev.Namespace == "" {
		return
	}
	r, err := s.ref(mustKind("Namespace"))
	if err != nil {
		return
	}
	err = r.rc.Delete().Namespace(ev.Namespace).Resource("events").Name(ev.Name).Do(ctx).Error()
	if err != nil && !apierrors.IsNotFound(err) {
		s.log.Debug("core event mirror not removed", "event", ev.Namespace+"/"+ev.Name, "err", err)
	}
}

func typesUID(s string) types.UID { return types.UID(s) }
