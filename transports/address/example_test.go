package address_test

import (
	"fmt"

	"passerelle.dev/passerelle/transports/address"
)

func Example() {
	local, _ := address.Encode("alice@example.com")
	fmt.Println(local)
	local, _ = address.Encode("50%off@shop.example")
	fmt.Println(local)
	legacy, _ := address.Decode(`\42ob%irc.libera.chat`)
	fmt.Println(legacy)
	// Output:
	// alice%example.com
	// 50\25off%shop.example
	// Bob@irc.libera.chat
}
