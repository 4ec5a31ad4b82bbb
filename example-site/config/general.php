<?php
return ['siteName' => 'Example site deployed by atomic-deploy'];
