package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/api/v1alpha1/manifest"
	"github.com/canarymesh/canarymesh/internal/controlplane"
	"github.com/canarymesh/canarymesh/internal/printer"
)

type fileFlags struct {
	files     []string
	recursive bool
	namespace string
}

func (f *fileFlags) read(cmd *cobra.Command) (*manifest.Result, error) {
	if len(f.files) == 0 {
		return nil, errors.New("no input: give -f FILE, -f DIR or -f -")
	}
	ns := f.namespace
	res, err := manifest.ReadPaths(f.files, cmd.InOrStdin(), f.recursive, manifest.Options{Namespace: ns, Enforce: ns != ""})
	if err != nil {
		var errs manifest.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(cmd.ErrOrStderr(), "error:", e)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d problem(s); nothing was applied\n", len(errs))
			return nil, exitCode(1)
		}
		return nil, err
	}
	for _, n := range res.Notices {
		fmt.Fprintln(cmd.ErrOrStderr(), "notice:", n)
	}
	return res, nil
}

func newApplyCommand(g *globals) *cobra.Command {
	var ff fileFlags
	var dryRun bool
	var output string
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|- [--dry-run] [-n NS]",
		Short: "Create or update objects from App Mesh, Flagger or Canarymesh manifests",
		Long: `Create or update the objects in manifests. App Mesh (appmesh.k8s.aws/v1beta1 and
v1beta2), Flagger (flagger.app/v1beta1) and Canarymesh (canarymesh.dev/v1alpha1)
documents are accepted as they are; Kubernetes kinds standalone mode does not run are
skipped with a notice. One bad document and nothing of the input is applied.

With --dry-run nothing is sent to a server: the input is validated and converted, and
-o yaml prints what would be stored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := ff.read(cmd)
			if err != nil {
				return err
			}
			objs := make([]v1alpha1.Object, len(res.Items))
			for i, it := range res.Items {
				objs[i] = it.Object
			}
			out := cmd.OutOrStdout()
			if dryRun {
				return printDryRun(out, output, res)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			resp, err := c.Apply(cmd.Context(), objs, false)
			if err != nil {
				return reportApplyError(cmd.ErrOrStderr(), res, err)
			}
			for _, r := range resp.Results {
				fmt.Fprintf(out, "%s/%s %s\n", strings.ToLower(r.Kind), r.Name, r.Action)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&ff.files, "filename", "f", nil, "file, directory or - (stdin); repeatable")
	cmd.Flags().BoolVarP(&ff.recursive, "recursive", "R", false, "walk directories recursively")
	cmd.Flags().StringVarP(&ff.namespace, "namespace", "n", "", "namespace for objects that name none (default \"default\")")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and convert only; needs no server")
	cmd.Flags().StringVarP(&output, "output", "o", "", "with --dry-run: yaml or json prints the converted objects")
	return cmd
}

func printDryRun(w io.Writer, output string, res *manifest.Result) error {
	if output == "" {
		for _, it := range res.Items {
			fmt.Fprintf(w, "%s/%s valid (dry run)\n", strings.ToLower(it.Object.GetObjectKind().GroupVersionKind().Kind), it.Object.GetName())
		}
		return nil
	}
	f, err := printer.ParseFormat(output)
	if err != nil || (f != printer.YAML && f != printer.JSON) {
		return fmt.Errorf("--dry-run prints -o yaml or -o json, not %q", output)
	}
	for i, it := range res.Items {
		k, err := v1alpha1.KindOf(it.Object)
		if err != nil {
			return err
		}
		if i > 0 && f == printer.YAML {
			fmt.Fprintln(w, "---")
		}
		if err := printer.Print(w, f, k, []v1alpha1.Object{it.Object}, false, time.Now()); err != nil {
			return err
		}
	}
	return nil
}

// reportApplyError prints a server's refusal against the file and line each problem
// came from.
func reportApplyError(w io.Writer, res *manifest.Result, err error) error {
	var se *controlplane.StatusError
	if !errors.As(err, &se) || se.Status.Details == nil || len(se.Status.Details.Causes) == 0 {
		return err
	}
	for _, c := range se.Status.Details.Causes {
		if c.Index >= 0 && c.Index < len(res.Items) {
			fmt.Fprintln(w, "error:", res.Items[c.Index].ErrorAt(c.Field, c.Message))
		} else {
			fmt.Fprintln(w, "error:", c.Message)
		}
	}
	fmt.Fprintln(w, "nothing was applied")
	return exitCode(1)
}
