// kovhttp: the reference workload of DESIGN.md section 7 for bench/kernel_reference.sh.
//
//	kovhttp server ADDR                 an HTTP server answering every request with RESP bytes
//	kovhttp load URL SECONDS KEEPALIVE SHORT_PER_S REQ RESP
//	                                    KEEPALIVE connections at full speed, one each, plus
//	                                    SHORT_PER_S new connections a second; prints its own count
//	                                    of the bytes its sockets moved, as JSON
//
// The load generator counts bytes at its connections (every Read and Write of the net.Conn),
// so its totals are the data bytes that crossed its sockets, to compare with the agent's.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type counted struct {
	net.Conn
	sent, recv *atomic.Int64
}

func (c counted) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.recv.Add(int64(n))
	return n, err
}

func (c counted) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.sent.Add(int64(n))
	return n, err
}

type totals struct {
	sent, recv, conns, requests atomic.Int64
}

func client(t *totals, keepAlive bool) *http.Client {
	d := &net.Dialer{}
	tr := &http.Transport{
		DisableKeepAlives:   !keepAlive,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		DisableCompression:  true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			t.conns.Add(1)
			return counted{c, &t.sent, &t.recv}, nil
		},
	}
	return &http.Client{Transport: tr}
}

func do(c *http.Client, url string, body []byte, t *totals) error {
	resp, err := c.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil {
		t.requests.Add(1)
	}
	return err
}

func num(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kovhttp: not a number:", s)
		os.Exit(2)
	}
	return n
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: kovhttp server ADDR RESP | load URL SECONDS KEEPALIVE SHORT_PER_S REQ RESP")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		resp := bytes.Repeat([]byte("k"), num(os.Args[3]))
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
			w.Write(resp)
		})
		if err := http.ListenAndServe(os.Args[2], h); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "load":
		url := os.Args[2]
		secs, keep, short, req := num(os.Args[3]), num(os.Args[4]), num(os.Args[5]), num(os.Args[6])
		body := bytes.Repeat([]byte("q"), req)
		var t totals
		var failures atomic.Int64
		end := time.Now().Add(time.Duration(secs) * time.Second)
		var wg sync.WaitGroup
		for i := 0; i < keep; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := client(&t, true)
				for time.Now().Before(end) {
					if do(c, url, body, &t) != nil {
						failures.Add(1)
					}
				}
				c.CloseIdleConnections()
			}()
		}
		if short > 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(time.Second / time.Duration(short))
				defer tick.Stop()
				var sw sync.WaitGroup
				for now := range tick.C {
					if !now.Before(end) {
						break
					}
					sw.Add(1)
					go func() {
						defer sw.Done()
						if do(client(&t, false), url, body, &t) != nil {
							failures.Add(1)
						}
					}()
				}
				sw.Wait()
			}()
		}
		wg.Wait()
		// Give the closing connections' last reads (EOF) a moment, then report.
		time.Sleep(200 * time.Millisecond)
		json.NewEncoder(os.Stdout).Encode(map[string]int64{
			"requests": t.requests.Load(), "connections": t.conns.Load(),
			"bytes_sent": t.sent.Load(), "bytes_received": t.recv.Load(),
			"failures": failures.Load(), "seconds": int64(secs),
		})
	default:
		fmt.Fprintln(os.Stderr, "kovhttp: unknown mode", os.Args[1])
		os.Exit(2)
	}
}
