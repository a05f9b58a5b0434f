// Command hello is the program the multi-stage example compiles into the OS image: it
// prints a greeting with the OS it runs on (PRETTY_NAME of /usr/lib/os-release, else
// /etc/os-release).
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

func main() {
	fmt.Printf("hello from %s\n", osName())
}

func osName() string {
	for _, p := range []string{"/usr/lib/os-release", "/etc/os-release"} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			if v, ok := strings.CutPrefix(s.Text(), "PRETTY_NAME="); ok {
				return strings.Trim(v, `"`)
			}
		}
	}
	return "an unknown OS"
}
