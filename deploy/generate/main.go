package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/canarymesh/canarymesh/deploy/internal/gen"
)

func main() {
	root := flag.String("root", ".", "repository root whose deploy/ directory is read and written")
	out := flag.String("out", "", "write generated files under this directory instead of ROOT (for comparisons)")
	flag.Parse()
	if err := gen.Run(*root, *out); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}
