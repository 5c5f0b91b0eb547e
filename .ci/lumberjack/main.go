// lumberjack-writer writes its standard input, one line per Write, through the lumberjack Logger
// that Tetragon's JSON exporter writes its export file with (cmd/tetragon/main.go, getExporter):
// the same Filename, MaxSize (MB), MaxBackups and Compress settings, nothing else. Tetragon's
// protojson encoder writes each event with one Fprintln, so one line is one Write here too.
// At the end of its input it closes the Logger, which waits for the backups' compression and
// deletion to finish.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cilium/lumberjack/v2"
)

func main() {
	file := flag.String("file", "", "the export file")
	maxSize := flag.Int("max-size-mb", 10, "export-file-max-size-mb")
	maxBackups := flag.Int("max-backups", 5, "export-file-max-backups")
	compress := flag.Bool("compress", false, "export-file-compress")
	flag.Parse()
	if *file == "" {
		fmt.Fprintln(os.Stderr, "lumberjack-writer: -file is required")
		os.Exit(2)
	}
	w := &lumberjack.Logger{
		Filename:   *file,
		MaxSize:    *maxSize,
		MaxBackups: *maxBackups,
		Compress:   *compress,
	}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			if _, werr := w.Write(line); werr != nil {
				fmt.Fprintln(os.Stderr, "lumberjack-writer:", werr)
				os.Exit(1)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "lumberjack-writer:", err)
			os.Exit(1)
		}
	}
	if err := w.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "lumberjack-writer:", err)
		os.Exit(1)
	}
}
