package browsertest

import (
	"bytes"
	"image"
	_ "image/jpeg" // FullScreenshot with a quality below 100 is a JPEG
	_ "image/png"
)

func decodeImage(b []byte) (image.Image, error) {
	img, _, err := image.Decode(bytes.NewReader(b))
	return img, err
}
