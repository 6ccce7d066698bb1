package image

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// SBOMMediaType is the media type of the SPDX document attached to an index.
const SBOMMediaType = "application/spdx+json"

// spdx is the part of an SPDX 2.3 JSON document that scgate's SBOM uses.
type spdx struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string        `json:"name"`
	SPDXID           string        `json:"SPDXID"`
	VersionInfo      string        `json:"versionInfo,omitempty"`
	DownloadLocation string        `json:"downloadLocation"`
	FilesAnalyzed    bool          `json:"filesAnalyzed"`
	LicenseConcluded string        `json:"licenseConcluded"`
	LicenseDeclared  string        `json:"licenseDeclared"`
	CopyrightText    string        `json:"copyrightText"`
	Supplier         string        `json:"supplier,omitempty"`
	ExternalRefs     []spdxExtRef  `json:"externalRefs,omitempty"`
	Checksums        []spdxSummary `json:"checksums,omitempty"`
}

type spdxExtRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxSummary struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// SBOM returns an SPDX 2.3 JSON document for the image's contents: the
// scgate binaries (one per architecture, with their SHA-256), the Go
// modules and the Go standard library compiled into them (read from the
// binaries' build info), and the CA bundle. The same inputs give the same
// bytes: the document's time is opts.Created, its namespace a hash of the
// binaries.
func SBOM(opts Options, binaries map[string][]byte) ([]byte, error) {
	opts = opts.withDefaults()
	arches := make([]string, 0, len(binaries))
	for a := range binaries {
		arches = append(arches, a)
	}
	sort.Strings(arches)
	if len(arches) == 0 {
		return nil, fmt.Errorf("image: SBOM: no binaries")
	}
	h := sha256.New()
	var goVersion string
	deps := map[string]string{} // module path → version
	doc := spdx{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name:         "scgate-" + opts.Version,
		CreationInfo: spdxCreationInfo{Created: opts.Created.Format(time.RFC3339), Creators: []string{"Tool: scgate-image"}},
	}
	for _, arch := range arches {
		bin := binaries[arch]
		sum := sha256.Sum256(bin)
		h.Write(sum[:])
		bi, err := buildinfo.Read(bytes.NewReader(bin))
		if err != nil {
			return nil, fmt.Errorf("image: SBOM: build info of the %s binary: %w", arch, err)
		}
		goVersion = bi.GoVersion
		for _, d := range bi.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			deps[d.Path] = d.Version
		}
		id := "SPDXRef-Package-scgate-" + arch
		doc.Packages = append(doc.Packages, spdxPackage{
			Name: "scgate (linux/" + arch + ")", SPDXID: id, VersionInfo: opts.Version,
			DownloadLocation: "git+" + opts.Source + "@" + opts.Revision, LicenseConcluded: "Apache-2.0",
			LicenseDeclared: "Apache-2.0", CopyrightText: "NOASSERTION",
			ExternalRefs: []spdxExtRef{{"PACKAGE-MANAGER", "purl", purl(bi.Main.Path, opts.Version)}},
			Checksums:    []spdxSummary{{"SHA256", hex.EncodeToString(sum[:])}},
		})
		doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", id})
	}
	doc.DocumentNamespace = opts.Source + "/spdx/scgate-" + opts.Version + "-" + hex.EncodeToString(h.Sum(nil))[:16]
	add := func(p spdxPackage) {
		doc.Packages = append(doc.Packages, p)
		for _, arch := range arches {
			doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-Package-scgate-" + arch, "CONTAINS", p.SPDXID})
		}
	}
	paths := make([]string, 0, len(deps))
	for p := range deps {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		add(spdxPackage{
			Name: p, SPDXID: "SPDXRef-Package-go-" + spdxID(p), VersionInfo: deps[p],
			DownloadLocation: "NOASSERTION", LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION",
			ExternalRefs: []spdxExtRef{{"PACKAGE-MANAGER", "purl", purl(p, deps[p])}},
		})
	}
	add(spdxPackage{
		Name: "stdlib", SPDXID: "SPDXRef-Package-go-stdlib", VersionInfo: goVersion,
		DownloadLocation: "https://go.dev/dl/", LicenseConcluded: "BSD-3-Clause", LicenseDeclared: "BSD-3-Clause", CopyrightText: "NOASSERTION",
		ExternalRefs: []spdxExtRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/stdlib@" + strings.TrimPrefix(goVersion, "go")}},
	})
	caSum := sha256.Sum256(opts.CABundle)
	add(spdxPackage{
		Name: "ca-certificates", SPDXID: "SPDXRef-Package-ca-certificates", DownloadLocation: "NOASSERTION",
		Supplier: "Organization: Debian", LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION",
		Checksums: []spdxSummary{{"SHA256", hex.EncodeToString(caSum[:])}},
	})
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func purl(path, version string) string { return "pkg:golang/" + path + "@" + version }

// spdxID makes an SPDX identifier part: letters, digits, "." and "-".
func spdxID(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, s)
}
