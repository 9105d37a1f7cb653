package authz_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/camgate/camgate/authz"
)

// authz used as a library, without HTTP: set up a camera, grant a viewer
// live video, ask, arm the site.
func Example() {
	dir, err := os.MkdirTemp("", "authz-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s := &authz.Service{DataDir: dir}
	if err := s.Initialize(); err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx, root := context.Background(), authz.Caller{Root: true}

	if _, _, err := s.PutSite(ctx, root, authz.Site{ID: "hq", Name: "HQ"}); err != nil {
		log.Fatal(err)
	}
	if _, _, err := s.PutDevice(ctx, root, authz.Device{ID: "cam1", Site: "hq", Kind: authz.DeviceCamera, Source: "builtin:demo"}); err != nil {
		log.Fatal(err)
	}
	if _, _, err := s.PutSubject(ctx, root, authz.Subject{ID: "alice", Kind: authz.SubjectUser, Email: "alice@example.com"}); err != nil {
		log.Fatal(err)
	}
	g, created, err := s.PutGrant(ctx, root, authz.Grant{Subject: "alice", Device: "cam1", Actions: []string{"live"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("grant created:", created, "source:", g.Source)
	fmt.Println("alice live:", s.Check("alice", "cam1", authz.ActionLive, time.Now()).Allowed)
	fmt.Println("alice archive:", s.Check("alice", "cam1", authz.ActionArchive, time.Now()).Allowed)

	grants, err := s.List(ctx, root, authz.KindGrants, authz.ListFilter{"subject": "alice"})
	fmt.Println("alice's grants:", len(grants), err)

	// A viewer is held to the same rules as over HTTP.
	_, err = s.Arm(ctx, authz.Caller{Subject: "alice"}, "hq", true)
	fmt.Println("alice arms hq:", err != nil)
	site, err := s.Arm(ctx, root, "hq", true)
	fmt.Println("root arms hq:", err == nil && site.Armed)
	// Output:
	// grant created: true source: manual
	// alice live: true
	// alice archive: false
	// alice's grants: 1 <nil>
	// alice arms hq: true
	// root arms hq: true
}
