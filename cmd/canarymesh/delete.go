package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

var errAtLeastName = errors.New("a NAME is required: give KIND NAME or KIND/NAME")

func newDeleteCommand(g *globals) *cobra.Command {
	var ff fileFlags
	var ignoreNotFound bool
	cmd := &cobra.Command{
		Use:   "delete KIND NAME | -f FILE",
		Short: "Delete an object, or every object of a manifest",
		Args:  cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			type target struct {
				k        *v1alpha1.KindInfo
				ns, name string
			}
			var targets []target
			switch {
			case len(ff.files) > 0 && len(args) > 0:
				return errors.New("give KIND NAME or -f FILE, not both")
			case len(ff.files) > 0:
				res, err := ff.read(cmd)
				if err != nil {
					return err
				}
				for _, it := range res.Items {
					k, err := v1alpha1.KindOf(it.Object)
					if err != nil {
						return err
					}
					targets = append(targets, target{k, it.Object.GetNamespace(), it.Object.GetName()})
				}
			case len(args) == 0:
				return errors.New("give KIND NAME or -f FILE")
			default:
				k, name, err := kindAndName(args)
				if err != nil {
					return err
				}
				if name == "" {
					return errAtLeastName
				}
				targets = append(targets, target{k, namespaceFor(k, ff.namespace, false), name})
			}
			var failed bool
			for _, t := range targets {
				err := c.Delete(cmd.Context(), t.k, t.ns, t.name)
				switch {
				case err == nil:
					fmt.Fprintf(cmd.OutOrStdout(), "%s/%s deleted\n", strings.ToLower(t.k.Kind), t.name)
				case errors.Is(err, store.ErrNotFound) && (ignoreNotFound || len(ff.files) > 0):
					fmt.Fprintf(cmd.ErrOrStderr(), "%s/%s not found\n", strings.ToLower(t.k.Kind), t.name)
				default:
					fmt.Fprintf(cmd.ErrOrStderr(), "error: %s/%s: %v\n", strings.ToLower(t.k.Kind), t.name, err)
					failed = true
				}
			}
			if failed {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&ff.files, "filename", "f", nil, "file, directory or - (stdin) whose objects to delete")
	cmd.Flags().BoolVarP(&ff.recursive, "recursive", "R", false, "walk directories recursively")
	cmd.Flags().StringVarP(&ff.namespace, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat a missing object as deleted")
	return cmd
}
