// Micro-benchmarks of the Go scheduler events that Causeway's Go runtime
// probes see (bench/go-runtime-probes.sh runs them with and without the
// agent). Stdlib only.
//
//	go-runtime-bench PHASE N   waits for a line on stdin (so that the agent
//	                           can probe it first), runs N operations of
//	                           PHASE and prints "PHASE ns-per-operation":
//	switch  one round of unbuffered ping-pong between two goroutines
//	        (2 sends to a parked receiver, 2 receives that park, 2
//	        goroutine switches)
//	spawn   one go statement whose goroutine signals over a buffered
//	        channel and exits (1 go statement, 1 goroutine start, 1 exit,
//	        1 buffered send, 1 receive)
//	chan    one buffered send and one receive in the same goroutine (no
//	        switch)
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	phase := os.Args[1]
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		panic(err)
	}
	bufio.NewReader(os.Stdin).ReadString('\n')
	t := time.Now()
	switch phase {
	case "switch":
		a, b := make(chan int), make(chan int)
		go func() {
			for v := range a {
				b <- v
			}
		}()
		for i := 0; i < n; i++ {
			a <- i
			<-b
		}
	case "spawn":
		done := make(chan struct{}, 1)
		for i := 0; i < n; i++ {
			go func() { done <- struct{}{} }()
			<-done
		}
	case "chan":
		c := make(chan int, 1)
		for i := 0; i < n; i++ {
			c <- i
			<-c
		}
	default:
		panic("phase: switch, spawn or chan")
	}
	fmt.Printf("%s %.1f\n", phase, float64(time.Since(t).Nanoseconds())/float64(n))
}
